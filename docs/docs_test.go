// Package docs holds the project's reference documents; its test checks
// every Markdown file of the repository.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	// absPath is a path on a developer's machine: it means nothing in a
	// checkout elsewhere.
	absPath = regexp.MustCompile(`(^|[\s(\x60"'=])(/(work|tmp|home|Users|root)/|\.\./shared/)`)
	// link is a relative Markdown link target.
	link = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)\s]*)?\)`)
)

// TestMarkdown: no Markdown file names an absolute path of a developer's
// machine, and every relative link points at a file of the repository.
func TestMarkdown(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "data") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		checkMarkdown(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkMarkdown(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if m := absPath.FindString(line); m != "" {
			t.Errorf("%s:%d: absolute path %q", path, i+1, strings.TrimSpace(m))
		}
		for _, m := range link.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), target)); err != nil {
				t.Errorf("%s:%d: link to %s: no such file", path, i+1, target)
			}
		}
	}
}
