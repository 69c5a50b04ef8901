package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"ecogrid/internal/gateway"
)

// The console's files, its settings and the OpenAPI document come from one
// origin under a CSP without inline script; pages of the app fall back to
// index.html, and the API prefix goes to the API only.
func TestHandlerServesConsoleUnderCSP(t *testing.T) {
	t.Parallel()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "api:"+r.URL.Path) })
	srv := httptest.NewServer(gateway.Handler(api, gateway.ConsoleConfig{TileURL: "https://tiles.example.org/{z}/{x}/{y}.png"}))
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, tc := range []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/", 200, `<div id="app">`},
		{"GET", "/cases/123", 200, `<div id="app">`},
		{"POST", "/api/ecogrid.v1.CaseService/ListCases", 200, "api:/ecogrid.v1.CaseService/ListCases"},
		{"GET", "/api/openapi.json", 200, `"swagger"`},
		{"GET", "/config.json", 200, `"tileUrl":"https://tiles.example.org/{z}/{x}/{y}.png"`},
		{"POST", "/", 405, "not allowed"},
	} {
		res, body := get(tc.method, tc.path)
		if res.StatusCode != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s: %d %.120q, want %d containing %q", tc.method, tc.path, res.StatusCode, body, tc.code, tc.contains)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self';", "connect-src 'self'", "frame-ancestors 'none'", "img-src 'self' data: blob: https://tiles.example.org"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-eval") || strings.Contains(strings.SplitN(strings.SplitN(csp, "script-src", 2)[1], ";", 2)[0], "unsafe-inline") {
			t.Errorf("%s: CSP allows inline or eval'd script: %q", tc.path, csp)
		}
	}
	// index.html loads only files of this origin, never an inline script.
	_, index := get("GET", "/")
	if strings.Contains(index, "<script>") || strings.Contains(index, "http://") || strings.Contains(index, "https://") {
		t.Errorf("index.html has inline script or a foreign origin:\n%s", index)
	}
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(gateway.OpenAPI, &doc); err != nil || len(doc.Paths) < 50 {
		t.Errorf("OpenAPI document: %d paths, %v", len(doc.Paths), err)
	}
}
