package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// writeWitness writes what a run's verdict rests on into dir, for reading
// after the run: calls.jsonl (the witness's call log, one call a line)
// and stops.txt (every worker stopped by the chaos: when, which, how).
func writeWitness(dir string, calls []Call, stops []stopped) error {
	f, err := os.Create(filepath.Join(dir, "calls.jsonl"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, c := range calls {
		if err := enc.Encode(c); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	f, err = os.Create(filepath.Join(dir, "stops.txt"))
	if err != nil {
		return err
	}
	for _, s := range stops {
		how := "SIGKILL"
		if s.term {
			how = "SIGTERM"
		}
		fmt.Fprintf(f, "%s worker %d %s\n", s.at.Format(time.RFC3339Nano), s.proc, how)
	}
	return f.Close()
}
