"""Load tests (Locust). See locustfile.py."""
