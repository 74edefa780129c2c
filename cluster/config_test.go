package cluster

import (
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Name = "a"
	if err := good.Validate(); err != nil {
		t.Fatalf("default config with a name: %v", err)
	}
	if err := (Config{Name: "zero"}).Validate(); err != nil {
		t.Fatalf("zero config with a name: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no name":          func(c *Config) { c.Name = "" },
		"bad bind":         func(c *Config) { c.BindAddr = "localhost:1" },
		"bad advertise":    func(c *Config) { c.AdvertiseAddr = "nowhere" },
		"port range":       func(c *Config) { c.GossipPort = 70000 },
		"probe timeout":    func(c *Config) { c.ProbeInterval, c.ProbeTimeout = time.Second, 2*time.Second },
		"small batches":    func(c *Config) { c.BatchBytes = 10 },
		"bad join":         func(c *Config) { c.Join = []string{"no-port"} },
		"bad http":         func(c *Config) { c.HTTPAddr = "no-port" },
		"negative queue":   func(c *Config) { c.ReplicationQueue = -1 },
		"negative ae":      func(c *Config) { c.AntiEntropyInterval = -time.Second },
		"negative ae cap":  func(c *Config) { c.AntiEntropyMaxBytes = -1 },
		"negative gossips": func(c *Config) { c.GossipNodes = -1 },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
	}
}

func TestAdvertiseAddr(t *testing.T) {
	c := Config{BindAddr: "127.0.0.1"}
	if a, err := c.advertiseAddr(); err != nil || a != "127.0.0.1" {
		t.Fatalf("advertise for 127.0.0.1 = %q, %v", a, err)
	}
	c = Config{BindAddr: "0.0.0.0"}
	if a, err := c.advertiseAddr(); err != nil || a == "0.0.0.0" || a == "" {
		t.Fatalf("advertise for 0.0.0.0 = %q, %v", a, err)
	}
	c = Config{BindAddr: "0.0.0.0", AdvertiseAddr: "10.1.2.3"}
	if a, _ := c.advertiseAddr(); a != "10.1.2.3" {
		t.Fatalf("explicit advertise address ignored: %q", a)
	}
}
