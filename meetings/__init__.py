"""The domain: offices, people, meetings, invitations, tokens and the audit trail.

``meetings.services`` are the only writers of the database; ``meetings.policy`` holds the permission
checks as pure functions. Nothing here imports media/, signaling/ or web/.
"""
