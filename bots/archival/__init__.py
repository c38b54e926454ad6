"""What an archivist needs of a captured item: metadata, reference code, checks, evidence."""
