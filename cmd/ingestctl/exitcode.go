package main

import (
	"errors"
	"fmt"

	"github.com/acme/campaign-ingest/ingest"
)

// Exit codes. They are part of ingestctl's interface: scripts branch on them.
const (
	exitOK          = 0   // success; with --wait: the command succeeded
	exitFailed      = 1   // the command failed (or ended with a terminal type this version does not know)
	exitUsage       = 2   // bad command line
	exitNATS        = 3   // NATS unreachable, stream or bucket missing, publish or read error
	exitAborted     = 4   // the command was aborted
	exitRejected    = 5   // the command was rejected (not run)
	exitTimedOut    = 6   // the job's deadline passed while the ingestion was running
	exitNoAnswer    = 7   // no terminal event within --wait-timeout (the job may still end later)
	exitDenied      = 8   // NATS refused the user a subject it needed (permission violation)
	exitInterrupted = 130 // interrupted (SIGINT or SIGTERM) while waiting
)

// exitCodes documents the codes, in order (usage and README).
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exitOK, "success; with --wait: the command succeeded"},
	{exitFailed, "the command failed"},
	{exitUsage, "bad command line"},
	{exitNATS, "NATS unreachable, stream or bucket missing, publish or read error"},
	{exitAborted, "the command was aborted"},
	{exitRejected, "the command was rejected (not run)"},
	{exitTimedOut, "the command timed out (its deadline passed while running)"},
	{exitNoAnswer, "no terminal event within --wait-timeout (the job may still end later)"},
	{exitDenied, "permission denied: the NATS user may not publish or subscribe to a subject needed"},
	{exitInterrupted, "interrupted while waiting"},
}

// outcomeCode is the exit code of a terminal event type.
func outcomeCode(t ingest.EventType) int {
	switch t {
	case ingest.EventSucceeded:
		return exitOK
	case ingest.EventAborted:
		return exitAborted
	case ingest.EventRejected:
		return exitRejected
	case ingest.EventTimedOut:
		return exitTimedOut
	default:
		return exitFailed
	}
}

// exitError carries an exit code. A nil err prints nothing: what happened
// was already printed (a terminal event).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err with an exit code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// usageErrorf is a bad command line.
func usageErrorf(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

// errHelp is returned when -h was asked; the usage was printed.
var errHelp = errors.New("help requested")

// exitCode is err's exit code: its own, or exitNATS for any other error.
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	default:
		return exitNATS
	}
}
