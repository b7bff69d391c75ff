"""Lifecycle: launch, head loss and recovery with backoff, live edits, head restarts, deletion."""

from __future__ import annotations

from engine import actions as act
from engine import events as ev
from engine import planner
from engine import state as stmod
from engine.phases import Phase
from tests.builders import raycluster, set_workers
from tests.engine.world import World

KEY = ("ray", "example-cluster")


def launched() -> World:
    world = World()
    world.apply_cluster(raycluster())
    world.settle()
    return world


def test_example_cluster_launches_head_then_min_workers_and_runs() -> None:
    world = launched()
    assert len(world.heads(KEY)) == 1
    assert world.live(KEY, "worker-node") == 2
    assert world.services == {KEY}
    assert world.status[KEY]["phase"] == "Running"
    assert world.state.clusters[KEY].phase is Phase.RUNNING


def test_workers_wait_for_a_running_head() -> None:
    world = World()
    world.apply_cluster(raycluster())
    world.deliver(0)  # the ApplyService result
    world.deliver(0)  # the head create result
    world.deliver(0)  # head Pending
    assert not any(isinstance(a, act.CreatePod) and a.role == ev.WORKER for a in world.actions)


def test_head_loss_recovers_with_backoff_and_counts_a_restart() -> None:
    world = launched()
    world.kill(world.heads(KEY)[0])
    world.settle()
    assert world.status[KEY]["phase"] == "AutoscalingExceptionRecovery"
    assert world.status[KEY]["autoscalerRetries"] == 1
    assert world.heads(KEY) == []
    world.advance(9.0)
    assert world.heads(KEY) == []
    world.advance(1.0)
    assert len(world.heads(KEY)) == 1
    assert world.status[KEY]["phase"] == "Running"
    assert world.live(KEY, "worker-node") == 2  # workers survive a head restart


def test_backoff_doubles_then_caps_at_five_minutes() -> None:
    world = launched()
    delays = []
    for _ in range(7):
        world.kill(world.heads(KEY)[0])
        world.settle()
        lost_at = world.now
        while not world.heads(KEY):
            world.advance(1.0)
        delays.append(world.now - lost_at)
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert world.status[KEY]["autoscalerRetries"] == 7


def test_min_workers_edit_applies_live_without_restart() -> None:
    world = launched()
    head = world.heads(KEY)
    world.apply_cluster(set_workers(world.state.clusters[KEY].obj, min_workers=3))
    world.settle()
    assert world.live(KEY, "worker-node") == 3
    assert world.heads(KEY) == head
    assert world.status[KEY]["autoscalerRetries"] == 0


def test_max_workers_lowered_removes_extra_workers() -> None:
    world = launched()
    obj = set_workers(world.state.clusters[KEY].obj, min_workers=0, max_workers=1)
    world.apply_cluster(obj)
    world.settle()
    assert world.live(KEY, "worker-node") == 1
    reasons = {a.reason for a in world.actions if isinstance(a, act.DeletePod)}
    assert reasons == {"max_workers_per_type"}


def test_head_config_change_restarts_ray_with_a_new_head() -> None:
    world = launched()
    old = world.heads(KEY)
    obj = world.state.clusters[KEY].obj
    obj = {**obj, "metadata": {**obj["metadata"], "generation": 2}}
    obj["spec"] = {**obj["spec"], "podTypes": [dict(t) for t in obj["spec"]["podTypes"]]}
    head_type = obj["spec"]["podTypes"][0]
    head_type["podConfig"] = {**head_type["podConfig"], "metadata": {"generateName": "h-"}}
    world.apply_cluster(obj)
    world.settle()
    assert world.heads(KEY) != old and len(world.heads(KEY)) == 1
    assert world.status[KEY]["phase"] == "Running"
    assert world.status[KEY]["autoscalerRetries"] == 0


def test_deleting_the_cluster_stops_all_actions_for_it() -> None:
    world = launched()
    world.send(ev.ClusterDeleted(cluster=KEY, at=world.now))
    before = len(world.actions)
    world.kill(world.heads(KEY)[0])
    world.settle()
    world.advance(600.0)
    assert len(world.actions) == before


def test_invalid_cluster_goes_to_error_and_others_are_unaffected() -> None:
    world = World()
    bad = raycluster("bad", upscalingSpeed=0)
    world.apply_cluster(bad)
    world.apply_cluster(raycluster("good"))
    world.settle()
    assert world.status[("ray", "bad")]["phase"] == "Error"
    assert "spec.upscalingSpeed" in world.status[("ray", "bad")]["message"]
    assert world.heads(("ray", "bad")) == []
    assert world.status[("ray", "good")]["phase"] == "Running"
    warnings = [a for a in world.actions if isinstance(a, act.EmitEvent) and a.type == "Warning"]
    assert [w.cluster for w in warnings] == [("ray", "bad")]


def test_fixing_an_invalid_spec_leaves_error() -> None:
    world = World()
    world.apply_cluster(raycluster(upscalingSpeed=0))
    world.settle()
    world.apply_cluster(raycluster(upscalingSpeed=1.0, generation=2))
    world.settle()
    assert world.status[KEY]["phase"] == "Running"


def test_failed_worker_is_deleted_and_replaced() -> None:
    world = launched()
    name = next(n for n, p in world.pods.items() if p.role == ev.WORKER)
    pod = world.pods[name]
    world.send(ev.PodSeen(cluster=KEY, at=world.now, name=name, pod_type=pod.pod_type,
                          role=pod.role, phase=ev.FAILED, ip=pod.ip,
                          launch_hash=pod.launch_hash))
    world.settle()
    assert name not in world.pods
    assert world.live(KEY, "worker-node") == 2


def test_every_log_line_starts_with_the_cluster_prefix() -> None:
    world = launched()
    lines = [a.line for a in world.actions if isinstance(a, act.Log)]
    assert lines and all(line.startswith("example-cluster,ray: ") for line in lines)


def test_status_worker_counts_follow_within_the_status_period() -> None:
    world = launched()
    assert world.status[KEY]["workers"] == {"head-node": 0, "worker-node": 0}
    world.advance(5.0)
    assert world.status[KEY]["workers"] == {"head-node": 0, "worker-node": 2}


def test_operator_restart_adopts_pods_without_duplicates() -> None:
    world = launched()
    world.advance(10.0)
    survivors = dict(world.pods)
    status = world.status[KEY]
    fresh = World(pods=survivors, next_ip=world.next_ip)
    fresh.state.synced = False
    obj = {**world.state.clusters[KEY].obj, "status": status}
    fresh.apply_cluster(obj)
    for pod in survivors.values():
        fresh.send(ev.PodSeen(cluster=KEY, at=0.0, name=pod.name, pod_type=pod.pod_type,
                              role=pod.role, phase=pod.phase, ip=pod.ip,
                              launch_hash=pod.launch_hash))
    fresh.send(ev.Synced(at=0.0))
    fresh.settle()
    effects = [a for a in fresh.actions if isinstance(a, act.CreatePod | act.DeletePod)]
    assert effects == []
    assert not any(isinstance(a, act.PatchStatus) for a in fresh.actions)


def test_ray_unreachable_restarts_the_head_after_backoff() -> None:
    world = launched()
    head = world.heads(KEY)
    world.send(ev.RayUnreachable(cluster=KEY, at=world.now, reason="GCS timeout"))
    world.settle()
    assert world.status[KEY]["phase"] == "AutoscalingExceptionRecovery"
    assert world.status[KEY]["autoscalerRetries"] == 1
    assert world.heads(KEY) == head  # not before the backoff
    world.advance(10.0)
    assert world.heads(KEY) and world.heads(KEY) != head
    assert world.status[KEY]["phase"] == "Running"
    reasons = [a.reason for a in world.actions if isinstance(a, act.DeletePod)]
    assert reasons == ["recovery"]


def test_a_cluster_replaced_unseen_under_the_same_name_starts_afresh() -> None:
    """The old object was deleted while the watch was down (its head create still in flight,
    its status written) and a new one with another uid took its name: the new one gets its
    own head and its own status, nothing of the old one is waited for."""
    state = stmod.initial(synced=True)
    old, new = raycluster(uid="uid-old"), raycluster(uid="uid-new")
    state, first = planner.step(state, ev.ClusterSeen(cluster=KEY, at=0.0, uid="uid-old",
                                                      generation=1, obj=old))
    assert any(isinstance(a, act.CreatePod) and a.role == ev.HEAD for a in first)
    state, again = planner.step(state, ev.ClusterSeen(cluster=KEY, at=5.0, uid="uid-new",
                                                      generation=1, obj=new))
    assert any(isinstance(a, act.CreatePod) and a.role == ev.HEAD for a in again)
    statuses = [a for a in again if isinstance(a, act.PatchStatus)]
    assert [s.uid for s in statuses] == ["uid-new"]


def test_a_deleted_cluster_is_said_goodbye_to_once() -> None:
    world = launched()
    key = next(iter(world.state.clusters))
    said = [a for a in world.send(ev.ClusterDeleted(cluster=key, at=world.now))
            if isinstance(a, act.Log)]
    assert [(a.cluster, a.message.split(":")[0]) for a in said] == [(key, "deleted")]
    assert world.send(ev.Tick(at=world.now + 1)) == ()
