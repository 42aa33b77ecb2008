"""The web service: FastAPI app factory, routes, Huey jobs, metrics. No TensorFlow is imported here
(the training job's own process is the one exception, in service/training.py's `run_job`)."""
