"""Post-call workflow: transcript, summary, CRM, email, ticket and metrics as durable consumers."""
