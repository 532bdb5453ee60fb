"""A small relying party that signs in through the gateway, so a newcomer sees the whole flow."""
