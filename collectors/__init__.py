"""The ``collectors`` command: the whole platform on one machine (``up``) and the API's CLI client."""
