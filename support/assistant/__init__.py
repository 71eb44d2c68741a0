"""The support assistant: classifies a question, diagnoses it from live data, hands off to a ticket."""
