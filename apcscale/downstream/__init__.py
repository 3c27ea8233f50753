"""Trained encoders at work: a corpus's features through an export (extract), linear probes of frozen
features on the labels a corpus carries (labels, classifier, probe, plot), an s3prl-style upstream
(upstream). Encoders come from apcscale.models.export. See docs/encoders.md."""
