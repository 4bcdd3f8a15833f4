//! Reconcilers written with the SDK alone; each is an example target of this package.
