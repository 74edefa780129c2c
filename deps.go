package main
import (
 _ "github.com/hashicorp/memberlist"
 _ "go.etcd.io/bbolt"
 _ "github.com/klauspost/reedsolomon"
 _ "github.com/gin-gonic/gin"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/prometheus/client_golang/prometheus/promhttp"
 _ "github.com/google/btree"
 _ "golang.org/x/sys/unix"
 _ "golang.org/x/time/rate"
)
func main(){}
