package cvmsim

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// isWellFormedID reports whether id matches ^ins-[a-z0-9]{8}$.
func isWellFormedID(id string) bool {
	if len(id) != 12 || id[:4] != "ins-" {
		return false
	}
	for i := 4; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// newRNG returns a deterministic generator for one stream of the seed.
func newRNG(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// newIDLocked returns a fresh well-formed ID that was never issued.
func (s *Server) newIDLocked() string {
	var b [12]byte
	copy(b[:], "ins-")
	for {
		for i := 4; i < len(b); i++ {
			b[i] = idAlphabet[s.rngFleet.IntN(len(idAlphabet))]
		}
		id := string(b[:])
		if _, used := s.fleet.issued[id]; used {
			continue
		}
		if _, used := s.fleet.byID[id]; used {
			continue
		}
		s.fleet.issued[id] = struct{}{}
		return id
	}
}

// rngToken returns n characters of [a-z0-9] from r.
func rngToken(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[r.IntN(len(idAlphabet))]
	}
	return string(b)
}

// rngUUID returns a UUID v4 drawn from r (deterministic, unlike RequestIds).
func rngUUID(r *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// zones returns the availability zones the simulator places instances in.
func zones(region string) []string {
	switch region {
	case "ap-guangzhou":
		return []string{"ap-guangzhou-3", "ap-guangzhou-4", "ap-guangzhou-6", "ap-guangzhou-7"}
	case "ap-shanghai":
		return []string{"ap-shanghai-2", "ap-shanghai-3", "ap-shanghai-4", "ap-shanghai-5", "ap-shanghai-8"}
	case "ap-beijing":
		return []string{"ap-beijing-3", "ap-beijing-5", "ap-beijing-6", "ap-beijing-7"}
	}
	return []string{region + "-1", region + "-2", region + "-3"}
}

type instanceType struct {
	name        string
	cpu, memory int64
}

func instanceTypes() []instanceType {
	return []instanceType{
		{"S5.MEDIUM4", 2, 4}, {"S5.LARGE8", 4, 8}, {"S5.2XLARGE16", 8, 16},
		{"SA2.MEDIUM4", 2, 4}, {"SA3.LARGE8", 4, 8}, {"S6.LARGE16", 4, 16},
		{"C5.2XLARGE16", 8, 16}, {"M5.LARGE32", 4, 32},
	}
}

// genInstanceLocked builds an instance with seeded descriptive fields; it is
// not added to the fleet.
func (s *Server) genInstanceLocked(region, id, state string, created time.Time) *instance {
	r := s.rngFleet
	zs := zones(region)
	types := instanceTypes()
	t := types[r.IntN(len(types))]
	roles := []string{"web", "api", "db", "cache", "worker", "batch", "gateway", "search"}
	envs := []string{"prod", "staging", "dev"}
	env := envs[r.IntN(len(envs))]
	role := roles[r.IntN(len(roles))]
	name := fmt.Sprintf("%s-%s-%02d", role, env, r.IntN(100))
	if r.IntN(10) == 0 {
		name = "未命名" // the console's default name ("unnamed")
	}
	tags := genTags(r, env, role)
	in := &instance{
		id:            id,
		region:        region,
		zone:          zs[r.IntN(len(zs))],
		name:          name,
		itype:         t.name,
		cpu:           t.cpu,
		memory:        t.memory,
		state:         state,
		tags:          tags,
		created:       created.UTC().Truncate(time.Second),
		chargeType:    "POSTPAID_BY_HOUR",
		privateIP:     fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 2+r.IntN(250)),
		imageID:       "img-" + rngToken(r, 8),
		sgID:          "sg-" + rngToken(r, 8),
		vpcID:         "vpc-" + rngToken(r, 8),
		subnetID:      "subnet-" + rngToken(r, 8),
		uuid:          rngUUID(r),
		restrict:      "NORMAL",
		isolated:      "NOTISOLATED",
		latestOp:      "RunInstances",
		latestOpState: "SUCCESS",
		latestOpReq:   rngUUID(r),
	}
	switch x := r.IntN(20); {
	case x == 0:
		in.chargeType = "SPOTPAID"
	case x <= 4:
		in.chargeType = "PREPAID"
		in.expires = in.created.AddDate(0, 1+r.IntN(36), 0)
		for now := s.now(); in.expires.Before(now); { // renewed yearly
			in.expires = in.expires.AddDate(1, 0, 0)
		}
	}
	if r.IntN(10) < 6 {
		in.publicIP = fmt.Sprintf("43.%d.%d.%d", 128+r.IntN(128), r.IntN(256), 2+r.IntN(250))
	}
	if state == StateStopped {
		in.latestOp = "StopInstances"
	}
	return in
}

// genTags draws 0 to 5 tags: none for about a fifth of the fleet, a lone
// "owner" for a tenth, otherwise env and role plus up to three of team,
// owner, cost-center and app.
func genTags(r *rand.Rand, env, role string) []Tag {
	switch x := r.IntN(10); {
	case x < 2:
		return nil
	case x == 2:
		return []Tag{{Key: "owner", Value: pick(r, owners)}}
	}
	tags := []Tag{{Key: "env", Value: env}, {Key: "role", Value: role}}
	extra := []Tag{
		{Key: "team", Value: pick(r, []string{"infra", "payments", "search", "growth"})},
		{Key: "owner", Value: pick(r, owners)},
		{Key: "cost-center", Value: fmt.Sprintf("cc-%04d", 1000+r.IntN(9000))},
		{Key: "app", Value: pick(r, []string{"checkout", "catalog", "ledger", "feed", "auth"})},
	}
	r.Shuffle(len(extra), func(i, j int) { extra[i], extra[j] = extra[j], extra[i] })
	return append(tags, extra[:r.IntN(len(extra))]...)
}

var owners = []string{"alice", "bob", "chen.wei", "li.na", "ops-team"}

func pick(r *rand.Rand, from []string) string { return from[r.IntN(len(from))] }

// seedFleetLocked creates the initial fleet: per region n instances, about
// 85% RUNNING and 15% STOPPED, created over the past two years, recorded as
// ABSENT -> state at t0.
func (s *Server) seedFleetLocked(n int, t0 time.Time) {
	for _, region := range s.fleet.order {
		batch := make([]*instance, 0, n)
		for i := 0; i < n; i++ {
			state := StateRunning
			if s.rngFleet.IntN(100) < 15 {
				state = StateStopped
			}
			age := time.Hour + time.Duration(s.rngFleet.Int64N(int64(730*24*time.Hour)))
			batch = append(batch, s.genInstanceLocked(region, s.newIDLocked(), state, t0.Add(-age)))
		}
		sort.SliceStable(batch, func(i, j int) bool { return batch[i].created.Before(batch[j].created) })
		for _, in := range batch {
			s.fleet.add(in, t0)
		}
	}
}
