package main

import (
	"bytes"
	"embed"
	"html"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// The Swagger UI files, copied from the swagger-ui-bundle Python package when the image is
// built (no CDN: the page works where the browser reaches nothing but Racetrack).
//
//go:embed swagger-ui
var assets embed.FS

// Every URL in the page is relative, so that it works at the root and under the Pub prefix.
const docsPage = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>%TITLE%</title>
  <link rel="stylesheet" href="swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
      persistAuthorization: true, tryItOutEnabled: true,
      presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"
    });
  </script>
</body>
</html>
`

func serveDocs(w http.ResponseWriter, config Config) {
	title := config.JobName
	if title == "" {
		title = "Racetrack job"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(strings.Replace(docsPage, "%TITLE%", html.EscapeString(title+" - Swagger UI"), 1)))
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	files, _ := fs.Sub(assets, "swagger-ui")
	content, err := fs.ReadFile(files, name)
	if name == "" || path.Clean(name) != name || err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "no asset "+name)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(content))
}

// openAPI describes what Racetrack knows of a docker-proxy job: its paths are the server's
// own, reached under /api/v1, and the runtime probes.
func openAPI(config Config, server string) map[string]interface{} {
	forward := func(method string) map[string]interface{} {
		operation := map[string]interface{}{
			"summary":     "Forwarded to the job's own server as " + strings.ToUpper(method) + " /{path}",
			"tags":        []string{"job"},
			"parameters":  []interface{}{map[string]interface{}{"name": "path", "in": "path", "required": true, "schema": map[string]interface{}{"type": "string"}, "example": "perform"}},
			"responses":   map[string]interface{}{"default": map[string]interface{}{"description": "The job server's answer"}},
			"operationId": method + "_forwarded",
		}
		if method == "post" || method == "put" {
			operation["requestBody"] = map[string]interface{}{"content": map[string]interface{}{"application/json": map[string]interface{}{"schema": map[string]interface{}{}}}}
		}
		return operation
	}
	paths := map[string]interface{}{
		"/api/v1/{path}": map[string]interface{}{"get": forward("get"), "post": forward("post"), "put": forward("put"), "delete": forward("delete")},
	}
	for _, probe := range []string{"/live", "/ready", "/health", "/metrics"} {
		paths[probe] = map[string]interface{}{"get": map[string]interface{}{
			"summary": "Runtime probe " + probe, "tags": []string{"runtime"},
			"responses": map[string]interface{}{"200": map[string]interface{}{"description": "OK"}},
		}}
	}
	title, version := config.JobName, config.JobVersion
	if title == "" {
		title = "Racetrack job"
	}
	if version == "" {
		version = "0.0.0"
	}
	return map[string]interface{}{
		"openapi": "3.0.3",
		"info":    map[string]interface{}{"title": title, "version": version},
		"servers": []interface{}{map[string]interface{}{"url": server}},
		"paths":   paths,
		"components": map[string]interface{}{"securitySchemes": map[string]interface{}{
			"RacetrackAuth": map[string]interface{}{"type": "apiKey", "in": "header", "name": "X-Racetrack-Auth"},
		}},
		"security": []interface{}{map[string]interface{}{"RacetrackAuth": []string{}}},
	}
}
