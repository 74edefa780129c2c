package resp

import (
	"context"
	"errors"
	"fmt"

	"github.com/disperse/disperse/cluster"
	"github.com/disperse/disperse/engine"
	"github.com/disperse/disperse/wal"
)

// Error replies with Redis's own text where Redis has one; clients match
// on the first word (ERR, WRONGPASS, NOAUTH, NOPERM, OOM, ...).
const (
	msgSyntax     = "ERR syntax error"
	msgNotInt     = "ERR value is not an integer or out of range"
	msgNotFloat   = "ERR value is not a valid float"
	msgOverflow   = "ERR increment or decrement would overflow"
	msgNaN        = "ERR increment would produce NaN or Infinity"
	msgNoAuth     = "NOAUTH Authentication required."
	msgWrongPass  = "WRONGPASS invalid username-password pair or user is disabled."
	msgNoPassword = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	msgOOM        = "OOM command not allowed when used memory > 'maxmemory'."
	msgTooBig     = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	msgOffset     = "ERR offset is out of range"
	msgCursor     = "ERR invalid cursor"
	msgDBIndex    = "ERR DB index is out of range"
	msgMaxClients = "ERR max number of clients reached"
	msgNoProto    = "NOPROTO unsupported protocol version"
	msgTx         = "ERR MULTI, EXEC, DISCARD and WATCH are not supported: commands of one connection run in order, each atomic on its own key"
	msgPubSub     = "ERR publish/subscribe is not supported by this server"
	msgBusyKey    = "ERR the key kept changing under a conditional write; try again"
	msgNXXX       = "ERR NX and XX, GT or LT options at the same time are not compatible"
	msgGTLT       = "ERR GT and LT options at the same time are not compatible"
	msgClosing    = "ERR the node is shutting down"
	msgStorage    = "ERR the node's storage is unavailable"
	msgDiskFull   = "MISCONF the node's disk is full; writes are refused until space is freed"
)

// replyError is an error answered to the client as it is: its text starts
// with the error code.
type replyError string

func (e replyError) Error() string { return string(e) }

// errorf is a replyError with a formatted text.
func errorf(format string, a ...any) replyError { return replyError(fmt.Sprintf(format, a...)) }

func invalidExpire(cmd string) replyError {
	return replyError("ERR invalid expire time in '" + cmd + "' command")
}

func wrongArgs(cmd string) replyError {
	return replyError("ERR wrong number of arguments for '" + cmd + "' command")
}

// errBusy: a conditional write lost to concurrent writers of the key more
// often than maxCASTries.
var errBusy = replyError(msgBusyKey)

// errorText is the one place that maps a handler's error to its reply.
// server reports whether the failure is the node's (to be logged) rather
// than the client's.
func (s *Server) errorText(err error) (msg string, server bool) {
	var re replyError
	switch {
	case errors.As(err, &re):
		return string(re), false
	case s.cfg.OOMError != nil && errors.Is(err, s.cfg.OOMError):
		return msgOOM, false
	case errors.Is(err, wal.ErrDiskFull):
		return msgDiskFull, true
	case errors.Is(err, cluster.ErrClosed), errors.Is(err, engine.ErrClosed), errors.Is(err, wal.ErrClosed),
		errors.Is(err, context.Canceled):
		return msgClosing, false
	}
	return msgStorage, true
}
