"""Keyword executions: crawl a site, extract each page's keywords, aggregate and cluster them."""
