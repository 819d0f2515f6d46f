"""Use cases: one function each; open no transactions themselves (the caller passes a Session)."""
