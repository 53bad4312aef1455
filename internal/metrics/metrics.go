// Package metrics defines the server's Prometheus metrics and serves them.
// A Metrics is the relay's Events (counters moved by the sessions as
// things happen) and reads the gauges (sessions, queued files) from the
// server and the spool at scrape time.
//
// Every name starts with sslm_. Counters:
//
//	sslm_connections_accepted_total              TCP connections that passed the caps
//	sslm_connections_refused_total{reason}       closed at accept: max_conns, max_conns_per_ip
//	sslm_logins_total{method}                    auth, signup
//	sslm_login_refusals_total{reason}            bad_credentials, throttled, login_timeout, signup_closed, signup_throttled, name_taken, invalid_credential
//	sslm_messages_relayed_total{kind}            dm, group, carbon (a DM counts once however many sessions its target has)
//	sslm_slow_consumers_total                    sessions dropped because their queue overflowed
//	sslm_uploads_total, sslm_upload_bytes_total      files committed to the spool
//	sslm_downloads_total, sslm_download_bytes_total  queued files written to their recipients
//	sslm_reloads_total{result}                   SIGHUP reloads: ok, error
//
// Gauges: sslm_connections_open, sslm_sessions, sslm_users_online,
// sslm_group_members, sslm_spool_bytes, sslm_spool_files,
// sslm_spool_recipients; and the Go runtime's and the process's standard
// metrics (go_*, process_*).
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sslmessager/internal/relay"
	"sslmessager/internal/spool"
)

// Metrics holds the server's metrics in a registry of its own. Its methods
// are safe for concurrent use.
type Metrics struct {
	reg           *prometheus.Registry
	connsAccepted prometheus.Counter
	connsRefused  *prometheus.CounterVec
	logins        *prometheus.CounterVec
	loginRefusals *prometheus.CounterVec
	relayed       *prometheus.CounterVec
	slowConsumers prometheus.Counter
	uploads       prometheus.Counter
	uploadBytes   prometheus.Counter
	downloads     prometheus.Counter
	downloadBytes prometheus.Counter
	reloads       *prometheus.CounterVec
}

var _ relay.Events = (*Metrics)(nil)

// New returns the metrics with every counter at zero, each known label
// value present, and the Go and process collectors registered.
func New() *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	vec := func(name, help, label string, values ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
		for _, lv := range values {
			v.WithLabelValues(lv)
		}
		return v
	}
	m := &Metrics{
		reg:           prometheus.NewRegistry(),
		connsAccepted: counter("sslm_connections_accepted_total", "TCP connections accepted (past the connection caps)."),
		connsRefused: vec("sslm_connections_refused_total", "TCP connections closed at accept, by the cap that refused them.", "reason",
			relay.RefusedMaxConns, relay.RefusedMaxConnsPerIP),
		logins: vec("sslm_logins_total", "Successful log-ins, by method.", "method", relay.LoginAuth, relay.LoginSignUp),
		loginRefusals: vec("sslm_login_refusals_total", "Refused AUTH and PUT queries, by reason.", "reason",
			relay.RefusedBadCredentials, relay.RefusedThrottled, relay.RefusedLoginTimeout, relay.RefusedSignUpClosed,
			relay.RefusedSignUpThrottled, relay.RefusedNameTaken, relay.RefusedInvalid),
		relayed: vec("sslm_messages_relayed_total", "Messages queued for their recipients, by kind.", "kind",
			relay.KindDirect, relay.KindGroup, relay.KindCarbon),
		slowConsumers: counter("sslm_slow_consumers_total", "Sessions dropped because they did not read their queue in time."),
		uploads:       counter("sslm_uploads_total", "Files committed to the spool."),
		uploadBytes:   counter("sslm_upload_bytes_total", "Bytes of the files committed to the spool."),
		downloads:     counter("sslm_downloads_total", "Queued files written to their recipients."),
		downloadBytes: counter("sslm_download_bytes_total", "Bytes of the queued files written to their recipients."),
		reloads:       vec("sslm_reloads_total", "Reloads (SIGHUP) of the configuration and files, by result.", "result", "ok", "error"),
	}
	m.reg.MustRegister(m.connsAccepted, m.connsRefused, m.logins, m.loginRefusals, m.relayed, m.slowConsumers,
		m.uploads, m.uploadBytes, m.downloads, m.downloadBytes, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// StatsSource is what the gauges read at scrape time: a *relay.Server.
type StatsSource interface {
	Stats() relay.Stats
}

// Watch registers the gauges read from srv and sp (nil: no spool gauges)
// at each scrape. Call it once.
func (m *Metrics) Watch(srv StatsSource, sp *spool.Spool) {
	m.reg.MustRegister(&stateCollector{srv: srv, sp: sp})
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Reloaded counts one reload (SIGHUP), ok or not.
func (m *Metrics) Reloaded(ok bool) {
	result := "ok"
	if !ok {
		result = "error"
	}
	m.reloads.WithLabelValues(result).Inc()
}

// The relay's events.

func (m *Metrics) ConnAccepted()              { m.connsAccepted.Inc() }
func (m *Metrics) ConnRefused(reason string)  { m.connsRefused.WithLabelValues(reason).Inc() }
func (m *Metrics) LoggedIn(how string)        { m.logins.WithLabelValues(how).Inc() }
func (m *Metrics) LoginRefused(reason string) { m.loginRefusals.WithLabelValues(reason).Inc() }
func (m *Metrics) Relayed(kind string)        { m.relayed.WithLabelValues(kind).Inc() }
func (m *Metrics) SlowConsumer()              { m.slowConsumers.Inc() }

func (m *Metrics) Uploaded(size int64) {
	m.uploads.Inc()
	m.uploadBytes.Add(float64(size))
}

func (m *Metrics) Sent(size int64) {
	m.downloads.Inc()
	m.downloadBytes.Add(float64(size))
}

// stateCollector reads the gauges when scraped.
type stateCollector struct {
	srv StatsSource
	sp  *spool.Spool
}

var (
	descConns      = prometheus.NewDesc("sslm_connections_open", "Open connections, logged in or not.", nil, nil)
	descSessions   = prometheus.NewDesc("sslm_sessions", "Logged-in sessions.", nil, nil)
	descUsers      = prometheus.NewDesc("sslm_users_online", "Users online, each once however many sessions they have.", nil, nil)
	descGroup      = prometheus.NewDesc("sslm_group_members", "Sessions in group mode.", nil, nil)
	descSpoolBytes = prometheus.NewDesc("sslm_spool_bytes", "Bytes queued in the spool, uploads in progress included.", nil, nil)
	descSpoolFiles = prometheus.NewDesc("sslm_spool_files", "Files queued in the spool, uploads in progress included.", nil, nil)
	descSpoolRcpts = prometheus.NewDesc("sslm_spool_recipients", "Recipients with files queued.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConns
	ch <- descSessions
	ch <- descUsers
	ch <- descGroup
	if c.sp != nil {
		ch <- descSpoolBytes
		ch <- descSpoolFiles
		ch <- descSpoolRcpts
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(descConns, float64(st.Conns))
	gauge(descSessions, float64(st.Sessions))
	gauge(descUsers, float64(st.Users))
	gauge(descGroup, float64(st.GroupMembers))
	if c.sp != nil {
		files, rcpts, bytes := c.sp.Totals()
		gauge(descSpoolBytes, float64(bytes))
		gauge(descSpoolFiles, float64(files))
		gauge(descSpoolRcpts, float64(rcpts))
	}
}
