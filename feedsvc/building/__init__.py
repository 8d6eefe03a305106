"""Building: articles → resources → the store. Owns what is published and when: which articles go in which feed
(feeds.py), the publisher's snapshot of a refresh (site.py) and a cold start's background reading (background.py),
rendering and dating every resource (render.py, versions.py, state.py), the schedule (scheduler.py), who builds
(lock.py, builder.py), how a build is committed to the store (committer.py) and written into it (storewriter.py, the
store's one writer), the parse results a restart takes (parsed.py), and the static export (export.py). It may import
reading/ and the neutral modules (config, model, paging, urls, resource, store, partners, preview, formats/); never
serving/.
"""
