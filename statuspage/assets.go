package statuspage

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assetFS embed.FS

type asset struct {
	data        []byte
	etag, ctype string
}

// staticAssets are the embedded files by name, with their ETag.
var staticAssets = loadAssets()

func loadAssets() map[string]asset {
	entries, err := assetFS.ReadDir("assets")
	if err != nil {
		panic("statuspage: " + err.Error())
	}
	out := map[string]asset{}
	for _, e := range entries {
		b, err := assetFS.ReadFile("assets/" + e.Name())
		if err != nil {
			panic("statuspage: " + err.Error())
		}
		sum := sha256.Sum256(b)
		ctype := "text/plain; charset=utf-8"
		switch path.Ext(e.Name()) {
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		}
		out[e.Name()] = asset{data: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
	}
	return out
}

// assets serves the stylesheet and the script, revalidated by ETag.
func assets(w http.ResponseWriter, r *http.Request, _ string) {
	a, ok := staticAssets[strings.TrimPrefix(r.URL.Path, "/assets/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}
