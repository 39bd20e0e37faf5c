"""Photos: the content-addressed store (blobs), the resumable upload and serving (service, views), who may see one (access), and what a photo must be (images)."""
