package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// readTestdata returns the content of testdata/name.
func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGolden compares v, as indented JSON, with testdata/name; -update
// rewrites the file.
func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// triggerView is what the golden files record of a decoded trigger answer.
type triggerView struct {
	TriggerResponse
	Kind      string `json:"kind"`
	ErrorCode string `json:"errorCode"`
}

func TestDecodeTrigger(t *testing.T) {
	tests := []struct {
		name      string // testdata/<name>.json holds the body, <name>.golden the result
		kind      TriggerKind
		status    Status
		requestID RequestID
	}{
		{"trigger_accepted", TriggerAccepted, StatusSuccess, "3520"},
		{"trigger_in_progress", TriggerBusy, StatusInProgress, "3521"},
		{"trigger_not_stopped", TriggerNotStopped, StatusFailed, ""},
		{"trigger_not_published", TriggerNotPublished, StatusFailed, ""},
		{"trigger_request_id_string", TriggerAccepted, StatusSuccess, "3520"},
		{"trigger_other_failure", TriggerFailed, StatusFailed, ""},
		{"trigger_unknown_status", TriggerUnknown, "Queued", "3520"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTrigger(readTestdata(t, tt.name+".json"))
			if err != nil {
				t.Fatalf("DecodeTrigger: %v", err)
			}
			if got.Kind() != tt.kind || got.Status != tt.status || got.RequestID != tt.requestID {
				t.Errorf("got kind %v, status %q, requestId %q; want %v, %q, %q",
					got.Kind(), got.Status, got.RequestID, tt.kind, tt.status, tt.requestID)
			}
			checkGolden(t, tt.name+".golden", triggerView{got, got.Kind().String(), got.ErrorCode()})
		})
	}
}

// statusView is what the golden files record of a decoded status answer.
type statusView struct {
	StatusResponse
	ErrorCode string `json:"errorCode"`
	Terminal  bool   `json:"terminal"`
}

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		name       string
		status     Status
		terminal   bool
		numRecords int64
		code       string
		batchID    string
	}{
		{"status_success", StatusSuccess, true, 15, "", ""},
		{"status_fetch_failed", StatusFailed, true, 0, CodeFetchFailed, ""},
		{"status_upload_failed", StatusFailed, true, 0, CodeUploadFailed, "a27d800531ac4d95945a2bc234eb0d86"},
		{"status_aborted", StatusAborted, true, 0, "", ""},
		{"status_in_progress", StatusInProgress, false, 0, "", ""},
		{"status_string_numbers", StatusSuccess, true, 1200, "", "01HZX3K9Q7R8S2T4V6W8Y0A1B3"},
		{"status_unknown_status", "Paused", false, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeStatus(readTestdata(t, tt.name+".json"))
			if err != nil {
				t.Fatalf("DecodeStatus: %v", err)
			}
			if got.Status != tt.status || got.Status.Terminal() != tt.terminal || got.NumRecords != tt.numRecords ||
				got.ErrorCode() != tt.code || got.BatchID != tt.batchID {
				t.Errorf("got %+v (code %q)", got, got.ErrorCode())
			}
			if got.RequestID == "" {
				t.Errorf("requestId lost")
			}
			checkGolden(t, tt.name+".golden", statusView{got, got.ErrorCode(), got.Status.Terminal()})
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"not json", "<html>502</html>"},
		{"array", `[{"status":"Success"}]`},
		{"null", "null"},
		{"no status", `{"requestId":3520,"info":"x"}`},
		{"empty status", `{"requestId":3520,"status":""}`},
		{"null status", `{"requestId":3520,"status":null}`},
		{"status not a string", `{"requestId":3520,"status":1}`},
		{"truncated", `{"requestId":3520,"status":"Succ`},
		{"trailing garbage", `{"requestId":3520,"status":"Success"} x`},
		{"requestId an object", `{"requestId":{},"status":"Success"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeTrigger([]byte(tt.body)); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeTrigger: got %v, want ErrMalformed", err)
			}
			if _, err := DecodeStatus([]byte(tt.body)); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeStatus: got %v, want ErrMalformed", err)
			}
		})
	}
	t.Run("trigger accepted without requestId", func(t *testing.T) {
		_, err := DecodeTrigger([]byte(`{"info":"…","status":"Success"}`))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("got %v, want ErrMalformed", err)
		}
	})
	t.Run("numRecords not integral", func(t *testing.T) {
		_, err := DecodeStatus([]byte(`{"numRecords":1.5,"status":"Success"}`))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("got %v, want ErrMalformed", err)
		}
	})
}

// errorView is what the golden files record of a gateway error.
type errorView struct {
	Operation    string `json:"operation"`
	StatusCode   int    `json:"statusCode"`
	ErrorCode    string `json:"errorCode"`
	Message      string `json:"message"`
	RetryAfter   string `json:"retryAfter"`
	Error        string `json:"error"`
	Retryable    bool   `json:"retryable"`
	Unauthorized bool   `json:"unauthorized"`
	Permanent    bool   `json:"permanent"`
}

func TestDecodeGatewayErrors(t *testing.T) {
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	c := &Client{now: func() time.Time { return now }, maxBody: DefaultMaxBodyBytes}
	const (
		retry = 1 << iota
		unauth
		perm
	)
	tests := []struct {
		file       string
		status     int
		retryAfter string
		code       string
		class      int // retry|unauth|perm
	}{
		{"error_401013.json", 401, "", "401013", unauth},
		{"error_403000.json", 403, "", "403000", perm},
		{"error_403003.json", 403, "", "403003", perm},
		{"error_403010.json", 403, "", "403010", unauth | perm},
		{"error_403020.json", 403, "", "403020", unauth | perm},
		{"error_403023.json", 403, "", "403023", perm},
		{"error_403_no_role.json", 403, "", "", perm},
		{"error_429001.json", 429, "30", "429001", retry},
		{"error_429002.json", 429, "1", "429002", retry},
		{"error_429050.json", 429, "Tue, 01 Dec 2026 02:01:00 GMT", "429050", retry},
		{"error_500.json", 500, "", "", retry},
		{"error_502_503000.json", 502, "", "503000", retry},
		{"error_503000.json", 503, "120", "503000", retry},
		{"error_504000.json", 504, "", "504000", retry},
		{"error_502.html", 502, "", "", retry},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			a := &answer{status: tt.status, header: http.Header{}, body: readTestdata(t, tt.file)}
			if tt.retryAfter != "" {
				a.header.Set("Retry-After", tt.retryAfter)
			}
			for _, op := range []string{OpTrigger, OpStatus} {
				var err error
				if op == OpTrigger {
					_, err = interpret(c, op, a, DecodeTrigger)
				} else {
					_, err = interpret(c, op, a, DecodeStatus)
				}
				var e *APIError
				if !errors.As(err, &e) {
					t.Fatalf("%s: got %v, want an *APIError", op, err)
				}
				class := 0
				if Retryable(err) {
					class |= retry
				}
				if Unauthorized(err) {
					class |= unauth
				}
				if Permanent(err) {
					class |= perm
				}
				if e.Operation != op || e.StatusCode != tt.status || e.ErrorCode != tt.code || class != tt.class {
					t.Errorf("%s: got %+v class %03b, want status %d code %q class %03b", op, e, class, tt.status, tt.code, tt.class)
				}
				if _, ok := RetryAfterOf(err); ok != (tt.retryAfter != "") {
					t.Errorf("%s: RetryAfterOf ok = %v", op, ok)
				}
				if op == OpStatus {
					d, _ := RetryAfterOf(err)
					checkGolden(t, tt.file+".golden", errorView{e.Operation, e.StatusCode, e.ErrorCode, e.Message, d.String(),
						e.Error(), Retryable(err), Unauthorized(err), Permanent(err)})
				}
			}
		})
	}
}

// A documented business answer is one whatever its HTTP status ("do not
// assume Failed comes as 200"); an undocumented status in an error answer
// is not.
func TestBusinessAnswerInErrorStatus(t *testing.T) {
	c := &Client{now: time.Now, maxBody: DefaultMaxBodyBytes}
	tests := []struct {
		name    string
		status  int
		file    string
		wantErr bool
	}{
		{"failed as 400", 400, "trigger_not_published.json", false},
		{"failed as 409", 409, "trigger_not_stopped.json", false},
		{"in progress as 202", 202, "trigger_in_progress.json", false},
		{"failed as 500", 500, "trigger_other_failure.json", false},
		{"unknown status as 400", 400, "trigger_unknown_status.json", true},
		{"unknown status as 200", 200, "trigger_unknown_status.json", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &answer{status: tt.status, header: http.Header{}, body: readTestdata(t, tt.file)}
			r, err := interpret(c, OpTrigger, a, DecodeTrigger)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got %+v, %v; want error %v", r, err, tt.wantErr)
			}
			if err == nil && r.Status == "" {
				t.Errorf("empty answer")
			}
		})
	}
}

// Values taken from an answer are bounded: ids and statuses past their
// bound make the answer malformed (with an error that does not quote
// them), info is cut at a rune boundary.
func TestDecodeBounds(t *testing.T) {
	long := func(n int) string { return strings.Repeat("7", n) }
	// 4095 bytes of "x" then "é" (2 bytes): the cut at 4096 falls inside é.
	straddling := strings.Repeat("x", MaxInfoLen-1) + "é" + "tail"
	tests := []struct {
		name      string
		body      string
		malformed bool
		wantInfo  string // when not malformed
		onlyGET   bool   // a value only status answers have: DecodeTrigger ignores it
	}{
		{"request id at the bound", `{"requestId":"` + long(MaxIDLen) + `","status":"Success"}`, false, "", false},
		{"request id past the bound", `{"requestId":"` + long(MaxIDLen+1) + `","status":"Success"}`, true, "", false},
		{"numeric request id past the bound", `{"requestId":` + long(10*MaxIDLen) + `,"status":"Success"}`, true, "", false},
		{"batch id past the bound", `{"requestId":1,"batchId":"` + long(MaxIDLen+1) + `","status":"Failed"}`, true, "", true},
		{"status at the bound", `{"requestId":1,"status":"` + long(MaxStatusLen) + `"}`, false, "", false},
		{"status past the bound", `{"requestId":1,"status":"` + long(MaxStatusLen+1) + `"}`, true, "", false},
		{"huge number as status", `{"requestId":1,"status":` + long(100_000) + `}`, true, "", false},
		{"info at the bound", `{"requestId":1,"info":"` + strings.Repeat("x", MaxInfoLen) + `","status":"Success"}`, false, strings.Repeat("x", MaxInfoLen), false},
		{"info cut at a rune boundary", `{"requestId":1,"info":"` + straddling + `","status":"Success"}`, false, strings.Repeat("x", MaxInfoLen-1), false},
		{"invalid UTF-8 in info", "{\"requestId\":1,\"info\":\"Mapping Id: X. \xff\xfe\xc3\",\"status\":\"Success\"}", false, "Mapping Id: X. \ufffd\ufffd\ufffd", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, serr := DecodeStatus([]byte(tt.body))
			tr, terr := DecodeTrigger([]byte(tt.body))
			for what, err := range map[string]error{"DecodeStatus": serr, "DecodeTrigger": terr} {
				if tt.onlyGET && what == "DecodeTrigger" {
					continue
				}
				if tt.malformed != errors.Is(err, ErrMalformed) {
					t.Errorf("%s: got %v, want malformed %v", what, err, tt.malformed)
				}
				if err != nil && len(err.Error()) > 600 {
					t.Errorf("%s: error of %d bytes quotes the value", what, len(err.Error()))
				}
			}
			if !tt.malformed && tt.wantInfo != "" && (st.Info != tt.wantInfo || tr.Info != tt.wantInfo) {
				t.Errorf("info of %d/%d bytes, want %d: %.40q…", len(st.Info), len(tr.Info), len(tt.wantInfo), st.Info)
			}
		})
	}
}
