package campaignsim

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Preload is the content of a preload file. Every part is optional.
type Preload struct {
	Clients  []Client  `json:"clients,omitempty"`
	Mappings []Mapping `json:"mappings,omitempty"`
	Faults   []Fault   `json:"faults,omitempty"`
}

// Load reads a preload document {"clients":[…],"mappings":[…],"faults":[…]}
// and adds what it holds. Unknown fields are an error. Nothing is added
// unless the whole document is valid.
func (s *Server) Load(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, maxAdminBody))
	if err != nil {
		return fmt.Errorf("campaignsim: read preload: %w", err)
	}
	var p Preload
	if err := decodeStrict(b, &p); err != nil {
		return fmt.Errorf("campaignsim: preload: %w", err)
	}
	err = errors.Join(validateAll(p.Clients, Client.validate), validateAll(p.Mappings, Mapping.validate),
		validateAll(p.Faults, Fault.validate))
	if err != nil {
		return fmt.Errorf("campaignsim: preload: %w", err)
	}
	for _, c := range p.Clients {
		s.AddClient(c)
	}
	for _, m := range p.Mappings {
		s.PutMapping(m)
	}
	for _, f := range p.Faults {
		s.InjectFault(f)
	}
	s.log.Info("campaign-sim: preloaded", "clients", len(p.Clients), "mappings", len(p.Mappings), "faults", len(p.Faults))
	return nil
}

// LoadFile loads the preload file at path (see Load).
func (s *Server) LoadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("campaignsim: %w", err)
	}
	defer f.Close()
	if err := s.Load(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
