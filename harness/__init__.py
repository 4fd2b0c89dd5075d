"""The ground and the judge: task records, images, the container runtime, test logs and verdicts.

Nothing here imports ``agent``: a verdict never depends on how an attempt was made.
"""
