// Package campaign is a client of Adobe Campaign Standard's XDM data
// ingestion API: [Client.Trigger] asks for an immediate ingestion of a
// mapping, [Client.Status] reads the state of an ingestion request.
//
// Business answers (Success, In Progress, Failed, Aborted, and statuses the
// client does not know) are typed results, never errors, whatever their
// HTTP status. Everything else is an [*APIError]: [Classify] says how to
// react to it (one [Class] per reaction), as do the predicates
// [Retryable], [Unauthorized], [Forbidden], [FinalAfterRetries] and
// [Permanent]; [RetryAfterOf] gives the wait a throttled call was told.
// The client retries nothing by itself except once after a 401, with a
// fresh token: scheduling retries is the caller's job.
//
// Tokens come from Adobe IMS (OAuth server-to-server, client credentials)
// and are cached until shortly before they expire, or from a caller's
// oauth2.TokenSource.
package campaign
