package resp

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unknownLabel is the command label of commands the server does not know,
// so that what clients send cannot grow the label set.
const unknownLabel = "unknown"

// metrics are the server's Prometheus collectors. The handles of each
// command's children are made on its first call and kept, so a call costs
// an array index and a few atomic adds.
type metrics struct {
	calls          *prometheus.CounterVec
	errors         *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	clients        prometheus.Gauge
	loopClients    prometheus.GaugeFunc
	protocolErrors prometheus.Counter
	collectors     []prometheus.Collector

	// per holds each command's handles by command index; the last slot is
	// for unknown commands.
	per []atomic.Pointer[commandMetrics]
}

type commandMetrics struct {
	calls, errors prometheus.Counter
	latency       prometheus.Observer
}

// newMetrics makes the collectors of a server with commands commands;
// looped tells how many connections its event loop serves.
func newMetrics(commands int, looped func() int64) *metrics {
	m := &metrics{
		per: make([]atomic.Pointer[commandMetrics], commands+1),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "disperse_resp_commands_total",
			Help: "Redis protocol commands run, by command (unknown: a command the server does not know).",
		}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "disperse_resp_command_errors_total",
			Help: "Redis protocol commands answered with an error reply, by command.",
		}, []string{"command"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "disperse_resp_command_duration_seconds",
			Help:    "Time to run a Redis protocol command, reply encoding included, by command.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"command"}),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "disperse_resp_connected_clients",
			Help: "Redis protocol connections open.",
		}),
		loopClients: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "disperse_resp_event_loop_clients",
			Help: "Redis protocol connections served by the event loop; each of the others has a goroutine.",
		}, func() float64 { return float64(looped()) }),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "disperse_resp_protocol_errors_total",
			Help: "Redis protocol connections closed because a request could not be framed or was too large.",
		}),
	}
	m.collectors = []prometheus.Collector{m.calls, m.errors, m.latency, m.clients, m.loopClients, m.protocolErrors}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	for i, c := range m.collectors {
		if err := r.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				r.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister(r prometheus.Registerer) {
	if r == nil {
		return
	}
	for _, c := range m.collectors {
		r.Unregister(c)
	}
}

// observe counts one call of cmd (nil: unknown) that took d.
func (m *metrics) observe(cmd *command, d time.Duration, failed bool) {
	i, label := len(m.per)-1, unknownLabel
	if cmd != nil {
		i, label = cmd.index, cmd.name
	}
	h := m.per[i].Load()
	if h == nil {
		h = &commandMetrics{
			calls:   m.calls.WithLabelValues(label),
			errors:  m.errors.WithLabelValues(label),
			latency: m.latency.WithLabelValues(label),
		}
		m.per[i].Store(h)
	}
	h.calls.Inc()
	if failed {
		h.errors.Inc()
	}
	h.latency.Observe(d.Seconds())
}
