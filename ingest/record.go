package ingest

// Phase is where a job stands, as recorded in the job state.
type Phase string

// The phases of a job record.
const (
	// PhaseClaimed: a command whose id did not come from its Nats-Msg-Id
	// holds the id before it triggers, so that a second message with the
	// same id does not trigger again.
	PhaseClaimed Phase = "claimed"
	// PhaseWaiting: the mapping was busy with another request (RequestID) and
	// the busy policy is "wait"; the job triggers its own once that ends.
	PhaseWaiting Phase = "waiting"
	// PhaseRunning: the job's own request (RequestID) is being polled.
	PhaseRunning Phase = "running"
	// PhaseDone: the terminal event was published (Outcome).
	PhaseDone Phase = "done"
)

// Record is a job's durable state: one per organization and command id, in the KV bucket
// INGEST_JOBS. A redelivered command resumes from it and never triggers twice.
type Record struct {
	CommandID     string    `json:"commandId"`
	CorrelationID string    `json:"correlationId,omitempty"`
	Organization  string    `json:"organization"`
	MappingID     string    `json:"mappingId"`
	Phase         Phase     `json:"phase"`
	RequestID     string    `json:"requestId,omitempty"`
	Attempt       int       `json:"attempt"`
	Polls         int       `json:"polls"`
	Status        string    `json:"status,omitempty"`
	Outcome       EventType `json:"outcome,omitempty"`
	Reason        Reason    `json:"reason,omitempty"`
	TriggeredAt   Time      `json:"triggeredAt,omitzero"`
	UpdatedAt     Time      `json:"updatedAt,omitzero"`
}

// RecordFromEvents rebuilds a command's state from its own events, for a
// redelivery that finds no record (its worker died before writing one):
// a terminal event means done; else the last triggered event names the
// request to resume. It returns nil when the events tell nothing.
func RecordFromEvents(cmd Command, events []Event) *Record {
	var rec *Record
	for _, ev := range events {
		if ev.CommandID != cmd.ID || ev.Organization != cmd.Organization {
			continue
		}
		if ev.Type.Terminal() {
			return &Record{
				CommandID: cmd.ID, CorrelationID: cmd.CorrelationID, Organization: cmd.Organization, MappingID: cmd.MappingID,
				Phase: PhaseDone, RequestID: ev.RequestID, Attempt: ev.Attempt, Polls: ev.Polls, Status: ev.Status,
				Outcome: ev.Type, Reason: ev.Reason, TriggeredAt: ev.TriggeredAt, UpdatedAt: ev.FinishedAt,
			}
		}
		if ev.RequestID != "" && (rec == nil || ev.Attempt >= rec.Attempt) {
			rec = &Record{
				CommandID: cmd.ID, CorrelationID: cmd.CorrelationID, Organization: cmd.Organization, MappingID: cmd.MappingID,
				Phase: PhaseRunning, RequestID: ev.RequestID, Attempt: ev.Attempt, TriggeredAt: ev.TriggeredAt, UpdatedAt: ev.TriggeredAt,
			}
		}
	}
	return rec
}

// DoneRecord is the record of a command that ended with ev without running
// (a rejection): stored, it makes a later message with the same id a
// duplicate instead of a second command whose outcome the stream would drop.
func DoneRecord(ev Event) Record {
	return Record{
		CommandID: ev.CommandID, CorrelationID: ev.CorrelationID, Organization: ev.Organization, MappingID: ev.MappingID,
		Phase: PhaseDone, Outcome: ev.Type, Reason: ev.Reason, UpdatedAt: ev.FinishedAt,
	}
}
