"""Projects, batches and render jobs: models arrive with the rendering issue."""
