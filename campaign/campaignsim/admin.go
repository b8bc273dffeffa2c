package campaignsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// adminRoutes registers the admin API under /_sim/. It has no
// authentication: the simulator is a local development and test tool.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/mappings", func(w http.ResponseWriter, r *http.Request) {
		ms := s.Mappings()
		slices.SortFunc(ms, func(a, b Mapping) int {
			return strings.Compare(a.Org+"\x00"+a.ID, b.Org+"\x00"+b.ID)
		})
		writeAdmin(w, http.StatusOK, ms)
	})
	mux.HandleFunc("POST /_sim/mappings", func(w http.ResponseWriter, r *http.Request) {
		ms, err := decodeOneOrMany[Mapping](r.Body)
		if err == nil {
			err = validateAll(ms, Mapping.validate)
		}
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		for _, m := range ms {
			s.PutMapping(m)
		}
		s.log.Info("campaign-sim: mappings put", "count", len(ms))
		writeAdmin(w, http.StatusOK, ms)
	})
	mux.HandleFunc("DELETE /_sim/mappings/{org}/{id}", func(w http.ResponseWriter, r *http.Request) {
		org, id := r.PathValue("org"), r.PathValue("id")
		if _, ok := s.Mapping(org, id); !ok {
			adminError(w, http.StatusNotFound, fmt.Errorf("no mapping %s/%s", org, id))
			return
		}
		s.DeleteMapping(org, id)
		s.log.Info("campaign-sim: mapping deleted", "organization", org, "mappingId", id)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/clients", func(w http.ResponseWriter, r *http.Request) {
		cs, err := decodeOneOrMany[Client](r.Body)
		if err == nil {
			err = validateAll(cs, Client.validate)
		}
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		for _, c := range cs {
			s.AddClient(c)
		}
		s.log.Info("campaign-sim: clients added", "count", len(cs))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/clients/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		if !s.RevokeClient(r.PathValue("id")) {
			adminError(w, http.StatusNotFound, fmt.Errorf("no client %q", r.PathValue("id")))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		fs, err := decodeOneOrMany[Fault](r.Body)
		if err == nil {
			err = validateAll(fs, Fault.validate)
		}
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		for i := range fs {
			fs[i].ID = s.InjectFault(fs[i])
		}
		writeAdmin(w, http.StatusOK, fs)
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		s.log.Info("campaign-sim: faults cleared")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || !s.RemoveFault(id) {
			adminError(w, http.StatusNotFound, fmt.Errorf("no active fault %q", r.PathValue("id")))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/calls", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		org, mapping, op, id := q.Get("org"), q.Get("mapping"), Operation(q.Get("op")), q.Get("requestId")
		calls := slices.DeleteFunc(s.Calls(), func(c Call) bool {
			return (org != "" && c.Org != org) || (mapping != "" && c.Mapping != mapping) ||
				(op != "" && c.Op != op) || (id != "" && c.RequestID != id)
		})
		writeAdmin(w, http.StatusOK, calls)
	})
	mux.HandleFunc("DELETE /_sim/calls", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCalls()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, http.StatusOK, s.Requests())
	})
}

// writeAdmin writes v as indented JSON, for people reading curl output.
func writeAdmin(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		adminError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, code, append(b, '\n'))
}

func adminError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, append(campaignError(code, err.Error()).body, '\n'))
}

// maxAdminBody bounds admin request bodies and preload files.
const maxAdminBody = 16 << 20

// decodeOneOrMany reads one JSON object or an array of them. Unknown fields
// are an error.
func decodeOneOrMany[T any](r io.Reader) ([]T, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxAdminBody))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("empty body: want a JSON object or array")
	}
	var out []T
	if b[0] == '[' {
		err = decodeStrict(b, &out)
	} else {
		out = make([]T, 1)
		err = decodeStrict(b, &out[0])
	}
	return out, err
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	if dec.More() {
		return fmt.Errorf("decode %T: trailing data after the JSON value", v)
	}
	return nil
}

func validateAll[T any](vs []T, validate func(T) error) error {
	var errs []error
	for _, v := range vs {
		if err := validate(v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
