from accounts.selectors import memberships_of


def tenancy(request):
    """The organization switcher and the acting membership, for every page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = getattr(request, "membership", None)
    unread = 0
    if membership is not None:
        from accounts.models import Notification

        unread = Notification.objects.filter(
            user=user, organization=membership.organization_id, read_at=None
        ).count()
    return {
        "my_memberships": memberships_of(user),
        "membership": membership,
        "unread_notifications": unread,
    }
