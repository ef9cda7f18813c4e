package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
)

// amendJSON returns handler with the JSON answers of paths amended: amend
// gets the decoded body and the status code and returns the status to send
// (it changes body in place). Other paths, and an answer that is not a JSON
// object, are passed through as handler gave them.
func amendJSON(handler http.Handler, paths []string, amend func(body map[string]any, code int) int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !slices.Contains(paths, req.URL.Path) {
			handler.ServeHTTP(w, req)
			return
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		writeJSON(w, amend(body, rec.Code), body)
	})
}
