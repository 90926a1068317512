"""autoUpdate for LAS and SGXPlugin: read the image repository's tags from its registry (the
distribution API, with the pull secret the spec names), pick the newest semantic version the
spec's ``autoUpdateScope`` allows, and move ``spec.image`` to it; the service controller then
upgrades the release, which rolls the DaemonSet."""
