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

const assetsPath = "/swagger-ui/"

// The Swagger UI files, copied from the swagger-ui-bundle Python package when the job is built
// (no CDN: the page works where the browser reaches nothing but Racetrack).
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
  <link rel="icon" type="image/png" href="swagger-ui/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="swagger-ui/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      tryItOutEnabled: true,
      displayRequestDuration: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
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
	page := []byte(strings.Replace(docsPage, "%TITLE%", html.EscapeString(title+" - Swagger UI"), 1))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

func serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	files, _ := fs.Sub(assets, "swagger-ui")
	if name == "" || path.Clean(name) != name {
		writeError(w, http.StatusNotFound, "NotFound", "no asset "+name)
		return
	}
	content, err := fs.ReadFile(files, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "NotFound", "no asset "+name)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(content))
}

var errorSchema = map[string]interface{}{
	"type": "object",
	"properties": map[string]interface{}{
		"error": map[string]interface{}{"type": "string"},
		"type":  map[string]interface{}{"type": "string"},
	},
	"required": []string{"error", "type"},
}

func errorResponse(description string) map[string]interface{} {
	return map[string]interface{}{
		"description": description,
		"content":     map[string]interface{}{"application/json": map[string]interface{}{"schema": errorSchema}},
	}
}

func probe(summary string) map[string]interface{} {
	return map[string]interface{}{"get": map[string]interface{}{
		"summary":   summary,
		"tags":      []string{"runtime"},
		"responses": map[string]interface{}{"200": map[string]interface{}{"description": "OK", "content": map[string]interface{}{"application/json": map[string]interface{}{}}}},
	}}
}

// openAPI is the job's OpenAPI 3.0 document; server is the path its routes are under.
func openAPI(config Config, server string) map[string]interface{} {
	body := map[string]interface{}{"schema": map[string]interface{}{"type": "object"}}
	if docsInputExample != nil {
		body["example"] = docsInputExample
	}
	perform := map[string]interface{}{
		"summary":     "Call the job's Perform function",
		"description": "A JSON object in; Perform's result out.",
		"operationId": "call_perform",
		"tags":        []string{"job"},
		"requestBody": map[string]interface{}{"required": true, "content": map[string]interface{}{"application/json": body}},
		"responses": map[string]interface{}{
			"200": map[string]interface{}{"description": "The result", "content": map[string]interface{}{"application/json": map[string]interface{}{"schema": map[string]interface{}{}}}},
			"400": errorResponse("A body that is not a JSON object"),
			"500": errorResponse("The error returned by Perform"),
		},
	}
	paths := map[string]interface{}{"/api/v1/perform": map[string]interface{}{"post": perform}}
	for _, probePath := range []string{"/live", "/ready", "/health"} {
		paths[probePath] = probe("Runtime probe " + probePath)
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
