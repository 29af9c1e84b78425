"""The continuation-assessment report: HTML with charts and the CSV behind each chart."""
