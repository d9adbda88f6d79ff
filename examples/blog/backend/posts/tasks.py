from celery import shared_task


@shared_task
def analyse_post(post_id):
    """Fills word_count and summary of a new post (the API shows them once this ran)."""
    from .models import Post

    post = Post.objects.filter(id=post_id).first()
    if post is None:
        return None
    words = post.body.split()
    post.word_count = len(words)
    post.summary = " ".join(words)[:100]
    post.save(update_fields=["word_count", "summary"])
    return post.word_count


@shared_task
def beat_tick():
    """Run by celery beat every BEAT_INTERVAL seconds; /api/stats counts the runs."""
    from .models import BeatRun

    BeatRun.objects.create()
