package postgres

import "testing"

func TestTransientSQLState(t *testing.T) {
	for code, want := range map[string]bool{
		"57014": true,  // statement_timeout
		"55P03": true,  // lock_timeout
		"25P03": true,  // idle_in_transaction_session_timeout
		"40001": true,  // serialization failure
		"40P01": true,  // deadlock
		"57P01": true,  // admin shutdown (restart)
		"08006": true,  // connection failure
		"23505": false, // unique violation: a bug or a conflict, not transient
		"42P01": false, // undefined table
		"22P02": false, // invalid text representation
	} {
		if got := transientSQLState(code); got != want {
			t.Errorf("transientSQLState(%s) = %v, want %v", code, got, want)
		}
	}
}
