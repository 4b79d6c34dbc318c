"""Boards made and filled from the gallery: from the selection bar, from the sidebar, and
by dropping images on a board in the sidebar. (An image's own panel puts it on a board or
takes it off: `views.image`.)"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from studio.accounts.access import get_membership_for_user
from studio.gallery.access import (
    as_id,
    require,
    team_board,
    team_images,
)
from studio.gallery.models import Board
from studio.gallery.services import add_new_to_board, add_to_board, open_board
from studio.gallery.views.common import safe_next
from studio.http import AppRequest


@require_POST
@login_required
def board_create(request: AppRequest) -> HttpResponse:
    membership = get_membership_for_user(request.user)
    require(membership.can_generate, "make boards")
    name = " ".join(request.POST.get("name", "").split())[:80]
    if not name:
        messages.error(request, "Give the board a name.")
        return redirect(safe_next(request) or reverse("gallery"))
    board, made = open_board(membership, name, request.user)
    images = team_images(membership, request.POST.getlist("image"), request.POST.getlist("set"))
    add_to_board(board, images, request.user)
    shown = f"{reverse('gallery')}?board={board.pk}"
    if images:
        # Made from the selection: the board, with the images just put on it.
        messages.success(request, f"{len(images)} image(s) on the board “{board.name}”.")
        return redirect(shown)
    if made:
        messages.success(request, f"Board “{board.name}” made: drag images onto it.")
    else:
        messages.info(request, f"There is already a board “{board.name}”: drag images onto it.")
    # Made from the sidebar: back to the grid the images are dragged from, not to an
    # empty board.
    return redirect(safe_next(request) or shown)


@require_POST
@login_required
def board_add(request: AppRequest, board_id: int) -> HttpResponse:
    """Images dropped on a board in the gallery's sidebar: added, and the sidebar drawn
    again with the new counts and what was done."""
    membership = get_membership_for_user(request.user)
    require(membership.can_generate, "change boards")
    board = team_board(membership, str(board_id))
    if board is None:
        raise Http404("No such board.")
    images = team_images(membership, request.POST.getlist("image"), request.POST.getlist("set"))
    added = add_new_to_board(board, images, request.user)
    said = _added_text(board, len(images), added)
    if not request.htmx:
        messages.success(request, said)
        return redirect(f"{reverse('gallery')}?board={board.pk}")
    context = {
        "boards": list(Board.objects.filter(team_id=membership.team_id).with_counts()),
        "current_board": as_id(request.POST.get("current_board")),
        "membership": membership,
        "board_said": said,
    }
    return render(request, "gallery/_boards.html", context)


def _added_text(board: Board, dropped: int, added: int) -> str:
    """What became of `dropped` images dropped on the board, `added` of them new to it."""
    if not dropped:
        return f"Nothing was added to “{board.name}”: those images are no longer in the gallery."
    if added == 0:
        return f"Already on “{board.name}”."
    return f"{added} image{'s' if added != 1 else ''} added to “{board.name}”."
