"""The signed-in person's own pages: their ways to sign in ("Two-step sign-in", `methods`),
their passkeys (`passkeys`) and recovery codes (`recovery_codes`). A change needs a second
factor from the last 15 minutes (handlers.shared.factor_changes)."""
