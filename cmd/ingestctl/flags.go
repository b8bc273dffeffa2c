package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// newFlagSet is a subcommand's flag set, writing its usage to a's stderr
// (stdout for -h) and with the NATS flags.
func (a *app) newFlagSet(name, synopsis string, conn *connFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("ingestctl "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ingestctl %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	conn.register(fs)
	return fs
}

// parse parses args into fs; -h prints the usage on stdout.
func (a *app) parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(a.stdout)
		fs.Usage()
		return errHelp
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "%s: %v\n", fs.Name(), err)
		fs.SetOutput(a.stderr)
		fs.Usage()
		return withCode(exitUsage, nil)
	}
	return nil
}

// output is the output format flag: -o/--output text|json, with --json
// the same as -o json. Default text.
type output struct{ json bool }

func (o *output) register(fs *flag.FlagSet, jsonUsage string) {
	fs.Var(formatValue{o}, "o", "output `format`: text or json (default text); json: "+jsonUsage)
	fs.Var(formatValue{o}, "output", "same as -o")
	fs.Var(jsonAlias{o}, "json", "same as -o json")
}

// formatValue is the flag.Value of -o.
type formatValue struct{ o *output }

func (v formatValue) String() string {
	if v.o != nil && v.o.json {
		return "json"
	}
	return ""
}

func (v formatValue) Set(s string) error {
	switch s {
	case "text":
		v.o.json = false
	case "json":
		v.o.json = true
	default:
		return fmt.Errorf("want text or json")
	}
	return nil
}

// jsonAlias is the boolean flag --json.
type jsonAlias struct{ o *output }

func (v jsonAlias) String() string   { return "" }
func (v jsonAlias) IsBoolFlag() bool { return true }

func (v jsonAlias) Set(s string) error {
	switch s {
	case "true":
		v.o.json = true
	case "false":
		v.o.json = false
	default:
		return fmt.Errorf("want true or false")
	}
	return nil
}

// followFlag registers -f/--follow on fs.
func followFlag(fs *flag.FlagSet, follow *bool, usage string) {
	fs.BoolVar(follow, "follow", false, usage)
	fs.BoolVar(follow, "f", false, "same as --follow")
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
