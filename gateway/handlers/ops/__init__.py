"""What the gateway serves of its own, outside any sign-in: liveness and readiness (`health`),
its Prometheus metrics (`metrics_page`), and the static files of its pages (`static`)."""
