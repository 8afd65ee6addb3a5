"""Export requests and ZIP bundles: models arrive with the exports issue."""
