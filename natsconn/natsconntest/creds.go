package natsconntest

import (
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Operator is a NATS operator with one account, for JWT (.creds)
// authentication in tests.
type Operator struct {
	claims     *jwt.OperatorClaims
	accountKey nkeys.KeyPair
	accountPub string
	accountJWT string
}

// NewOperator generates an operator and an account signed by it.
func NewOperator(t testing.TB) *Operator {
	t.Helper()
	okp := must(t, nkeys.CreateOperator)
	opub := mustPublic(t, okp)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "ingest-test-operator"
	ojwt, err := oc.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	if oc, err = jwt.DecodeOperatorClaims(ojwt); err != nil {
		t.Fatal(err)
	}
	akp := must(t, nkeys.CreateAccount)
	apub := mustPublic(t, akp)
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "INGEST"
	ajwt, err := ac.Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	return &Operator{claims: oc, accountKey: akp, accountPub: apub, accountJWT: ajwt}
}

// Configure makes a server trust the operator and know its account
// (a memory resolver).
func (o *Operator) Configure(opts *server.Options) {
	r := &server.MemAccResolver{}
	_ = r.Store(o.accountPub, o.accountJWT)
	opts.TrustedOperators = []*jwt.OperatorClaims{o.claims}
	opts.AccountResolver = r
}

// UserCreds creates a user of the account and writes its .creds file (user
// JWT and nkey seed); it returns the file's path and the seed.
func (o *Operator) UserCreds(t testing.TB, name string) (file string, seed []byte) {
	t.Helper()
	ukp := must(t, nkeys.CreateUser)
	uc := jwt.NewUserClaims(mustPublic(t, ukp))
	uc.Name = name
	ujwt, err := uc.Encode(o.accountKey)
	if err != nil {
		t.Fatal(err)
	}
	if seed, err = ukp.Seed(); err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	return WriteFile(t, name+".creds", string(creds)), seed
}

// NkeyUser creates a user nkey: the server option that accepts it and the
// path of a file holding its seed.
func NkeyUser(t testing.TB, perms *server.Permissions) (user *server.NkeyUser, seedFile string, seed []byte) {
	t.Helper()
	kp := must(t, nkeys.CreateUser)
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return &server.NkeyUser{Nkey: mustPublic(t, kp), Permissions: perms}, WriteFile(t, "user.nk", string(seed)+"\n"), seed
}

func must(t testing.TB, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func mustPublic(t testing.TB, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
