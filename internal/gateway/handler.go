package gateway

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"ecogrid/web"
)

// ConsoleConfig is what the console reads from /config.json at start: the
// settings of the deployment, never anything about the user.
type ConsoleConfig struct {
	// TileURL is an optional XYZ tile layer under the grid.
	TileURL string `json:"tileUrl,omitempty"`
}

// Handler serves the JSON API under /api, its OpenAPI document at
// /api/openapi.json, the console's settings at /config.json and the
// console's files everywhere else, with a Content-Security-Policy that
// allows no inline script and no origin but this one (and the tile
// server's images when one is configured).
func Handler(api http.Handler, cc ConsoleConfig) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(APIPrefix+"/", http.StripPrefix(APIPrefix, api))
	mux.HandleFunc("GET "+APIPrefix+"/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})
	ccJSON, _ := json.Marshal(cc)
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(ccJSON)
	})
	mux.Handle("/", consoleFiles(web.Dist()))

	imgSrc := "'self' data: blob:"
	if u, err := url.Parse(cc.TileURL); err == nil && u.Scheme != "" && u.Host != "" {
		imgSrc += " " + u.Scheme + "://" + u.Host
	}
	csp := strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		// OpenLayers and ECharts position their overlays through element
		// styles; no inline <script> is ever allowed.
		"style-src 'self' 'unsafe-inline'",
		"img-src " + imgSrc,
		"connect-src 'self'",
		"worker-src 'self' blob:",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		mux.ServeHTTP(w, r)
	})
}

// consoleFiles serves the built console; a path that is no file (a page of
// the single-page app, /cases/…) gets index.html.
func consoleFiles(dist fs.FS) http.Handler {
	files := http.FileServerFS(dist)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if p == "" {
			p = "index.html"
		}
		if st, err := fs.Stat(dist, p); err != nil || st.IsDir() {
			r = r.Clone(r.Context())
			r.URL.Path = "/"
			p = "index.html"
		}
		if strings.HasPrefix(p, "assets/") {
			// Vite names assets by their content hash.
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}
