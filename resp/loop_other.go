//go:build !linux

package resp

// Without epoll a goroutine serves each connection.
type (
	loop     struct{}
	loopConn struct{}
)

func (s *Server) toLoop(*conn) bool { return false }

func (*loop) wake() {}
