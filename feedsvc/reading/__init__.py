"""Reading: files → articles. Owns the articles folder and everything about one file: walking the folder
(folder.py), parsing and checking a file (frontmatter, markup, text, chrome, articles.py), reading many at once
(pool.py), a cold start's files ahead (readahead.py) and only what changed (scan.py), what a refresh is reading now
(progress.py), and the folder audit (audit.py). Its result is an `Article` or a `Skipped` (model.py, articles.py).
It may import only the neutral modules (config, model); never building/ or serving/.
"""
