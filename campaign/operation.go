package campaign

import "context"

// Operations, as set on the context of every outgoing request and in
// [APIError.Operation].
const (
	OpTrigger = "trigger" // POST …/ingest
	OpStatus  = "status"  // GET …/ingest?requestId=
	OpToken   = "token"   // POST to the IMS token endpoint
)

type operationKey struct{}

// withOperation returns a copy of ctx that carries op.
func withOperation(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, operationKey{}, op)
}

// Operation returns the operation (OpTrigger, OpStatus or OpToken) of an
// outgoing request, given the request's context. The client sets it on every
// request it sends, token requests included, so that a RoundTripper wrapping
// [Config.Transport] can label what it observes. It returns "" for a context
// that did not come from the client.
func Operation(ctx context.Context) string {
	op, _ := ctx.Value(operationKey{}).(string)
	return op
}
