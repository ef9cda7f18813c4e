package notifier_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cvmwatch/cvmwatch/notifier"
	"github.com/cvmwatch/cvmwatch/publisher"
	"github.com/cvmwatch/cvmwatch/publisher/natstest"
)

// TestSentBucketReplicas: the sent-events bucket follows nats.replicas as
// the streams do: auto gives 3 on a 3-node cluster; an existing bucket is
// scaled up when asked, never down.
func TestSentBucketReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	c := natstest.StartCluster(t, 3)
	c.WaitReady(t)
	nc, err := nats.Connect(c.URLs(), nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	replicas := func(bucket string) int {
		t.Helper()
		s, err := js.Stream(t.Context(), "KV_"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Replicas
	}
	open := func(bucket string, want int) publisher.ReplicaChoice {
		t.Helper()
		_, choice, err := notifier.OpenKVSent(t.Context(), js, bucket, time.Hour, want)
		if err != nil {
			t.Fatalf("OpenKVSent(%s, %d): %v", bucket, want, err)
		}
		return choice
	}

	if ch := open("auto", publisher.AutoReplicas); ch.Replicas != 3 || replicas("auto") != 3 {
		t.Fatalf("auto on a 3-node cluster = %+v, bucket has %d replicas; want 3", ch, replicas("auto"))
	}
	if ch := open("one", 1); ch.Replicas != 1 || replicas("one") != 1 {
		t.Fatalf("1 = %+v, bucket has %d; want 1", ch, replicas("one"))
	}
	if ch := open("one", 3); ch.Replicas != 3 || replicas("one") != 3 {
		t.Fatalf("scaling up to 3 = %+v, bucket has %d; want 3", ch, replicas("one"))
	}
	if ch := open("one", 1); ch.Replicas != 3 || replicas("one") != 3 {
		t.Fatalf("asking for 1 again = %+v, bucket has %d; want 3 kept (never scaled down)", ch, replicas("one"))
	}
}
