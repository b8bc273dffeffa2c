package statuspage

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/acme/campaign-ingest/campaign/campaignsim"
)

var update = flag.Bool("update", false, "write screenshots of the status page to docs/img/status-*.png")

// BrowserNames are the headless browsers the browser test looks for on
// PATH, in order; INGEST_TEST_BROWSER names another binary.
var BrowserNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

func findBrowser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("INGEST_TEST_BROWSER"); p != "" {
		return p
	}
	for _, name := range BrowserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skipf("no headless browser: none of %v on PATH and INGEST_TEST_BROWSER unset (Debian: apt-get install chromium)", BrowserNames)
	return ""
}

// browser drives one tab of a headless browser, each step bounded.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	// The whole session is bounded; chromedp's first Run must not have a
	// shorter timeout than the browser's life.
	life, cancelLife := context.WithTimeout(context.Background(), 3*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	ctx, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelTab(); cancelAlloc(); cancelLife() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	return &browser{t: t, ctx: ctx}
}

// do runs steps within timeout.
func (b *browser) do(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// wait waits until a JavaScript expression is true, across navigations
// (an evaluation that a navigation interrupts is tried again).
func (b *browser) wait(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("%s: not within %s (last error: %v)", what, timeout, err)
}

// screenshot writes the page to docs/img/status-<name>.png with -update.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if !*update {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "docs", "img", "status-"+name+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote %s", path)
}

// JavaScript helpers of the test, about the rows of the page's table.
const (
	jsRowIDs   = `[...document.querySelectorAll('tbody tr[data-key] th a')].map(a => a.textContent)`
	jsRowState = `((id) => { const a = [...document.querySelectorAll('tbody tr[data-key] th a')].find(a => a.textContent === id);
		return a ? a.closest('tr').querySelector('.state').textContent : '' })`
)

// TestStatusPageInBrowser drives the page of a worker in a headless
// browser: jobs appear and finish live, the filter form filters, a job
// opens with its events and record, the mappings view sums up, and the
// page is usable with the keyboard and on a phone-sized screen.
func TestStatusPageInBrowser(t *testing.T) {
	exe := findBrowser(t)
	live := campaignsim.Mapping{Org: "acme", ID: "XDMLIVE", Script: campaignsim.Script{
		Outcome: campaignsim.OutcomeSuccess, Records: 42, Duration: campaignsim.Duration(4 * time.Second)}}
	c := newCluster(t, append(demoMappings("acme"), live)...)
	r := c.start(Config{})
	history := map[string]string{"fetch-1": "XDMFETCH", "upload-1": "XDMUPLOAD", "abort-1": "XDMABORT", "draft-1": "XDMDRAFT", "ok-1": "XDM44"}
	for id, mapping := range history {
		c.publish("acme", mapping, id, "etl-run-1")
	}
	c.publish("acme", "XDMNEVER", "never-1", "etl-run-1")
	for id := range history {
		c.events.Terminal(t, id, 20*time.Second)
	}
	b := newBrowser(t, exe)

	// Jobs view; then a new job appears and finishes without a reload.
	b.do("open the jobs view", 15*time.Second, chromedp.Navigate(r.base+"/jobs"), chromedp.WaitVisible(chromedp.CSS(`tbody tr[data-key]`)))
	b.wait("live updates connected", `!document.getElementById('live-status').textContent.includes('connecting')`, 10*time.Second)
	eval[bool](b, `window.notReloaded = true`)
	c.publish("acme", "XDMLIVE", "live-1", "etl-run-2")
	b.wait("live-1 appears running, first", jsRowState+`('live-1') === 'running' && document.querySelector('tbody th a').textContent === 'live-1'`, 15*time.Second)
	b.wait("live-1 succeeds", jsRowState+`('live-1') === 'succeeded'`, 20*time.Second)
	if !eval[bool](b, `window.notReloaded === true`) {
		t.Fatal("the page reloaded")
	}
	if got := eval[[]string](b, jsRowIDs); len(got) != 7 {
		t.Errorf("rows %v, want 7", got)
	}
	b.screenshot("jobs")

	// Keyboard: the first Tab reaches the skip link, visibly focused.
	b.do("press Tab", 5*time.Second, chromedp.KeyEvent(kb.Tab))
	if !eval[bool](b, `document.activeElement.classList.contains('skip') && getComputedStyle(document.activeElement).outlineStyle !== 'none'`) {
		t.Error("Tab does not reach a visibly focused skip link")
	}
	if !eval[bool](b, `[...document.querySelectorAll('form.filters input, form.filters select')].every(e => e.labels.length === 1)`) {
		t.Error("a filter input has no label")
	}

	// Filter: failed jobs only.
	b.do("filter on failed", 15*time.Second,
		chromedp.SetValue(chromedp.CSS(`#f-outcome`), "failed"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)))
	b.wait("the filtered view", `location.search.includes('outcome=failed') && document.readyState === 'complete'`, 10*time.Second)
	got := eval[[]string](b, jsRowIDs)
	slices.Sort(got)
	if !slices.Equal(got, []string{"fetch-1", "upload-1"}) {
		t.Errorf("failed jobs shown: %v", got)
	}

	// Open a job: its events in order and its record.
	b.do("open upload-1", 15*time.Second, chromedp.Click(chromedp.CSS(`tbody tr[data-key*="upload-1"] th a`)), chromedp.WaitVisible(chromedp.CSS(`pre.json`)))
	if types := eval[[]string](b, `[...document.querySelectorAll('#events-caption ~ tbody .state')].map(s => s.textContent)`); !slices.Equal(types, []string{"triggered", "failed"}) {
		t.Errorf("events %v, want triggered then failed", types)
	}
	if !eval[bool](b, `document.querySelector('h1').textContent.includes('upload-1') && document.querySelector('pre.json').textContent.includes('"phase": "done"')`) {
		t.Error("the job view does not show the job and its record")
	}
	b.screenshot("job")

	// Mappings view.
	b.do("open the mappings view", 15*time.Second, chromedp.Navigate(r.base+"/"), chromedp.WaitVisible(chromedp.CSS(`tbody tr[data-key]`)))
	if !eval[bool](b, `[...document.querySelectorAll('tbody tr[data-key]')].some(tr => tr.textContent.includes('XDMNEVER') && tr.textContent.includes('yes, 1'))`) {
		t.Error("the mappings view does not show the running job")
	}
	b.screenshot("mappings")

	// A phone-sized screen: the page does not overflow; the tables scroll
	// in their own region.
	b.do("phone", 15*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(r.base+"/jobs"), chromedp.WaitVisible(chromedp.CSS(`tbody tr[data-key]`)))
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the jobs view is %d px wide on a 390 px screen: %v", w, eval[[]string](b, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391 && !e.closest('.scroll')).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))`))
	}
	b.screenshot("jobs-phone")
}
