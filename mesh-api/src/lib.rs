//! Istio-compatible configuration model.
