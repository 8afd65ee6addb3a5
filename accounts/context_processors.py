from accounts.selectors import memberships_of


def tenancy(request):
    """The organization switcher and the acting membership, for every page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "my_memberships": memberships_of(user),
        "membership": getattr(request, "membership", None),
    }
