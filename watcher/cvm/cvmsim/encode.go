package cvmsim

import "encoding/json"

// createdLayout is the API's time format, e.g. 2020-03-10T02:43:51Z.
const createdLayout = "2006-01-02T15:04:05Z"

type statusItem struct {
	InstanceId    *string `json:"InstanceId"`
	InstanceState *string `json:"InstanceState"`
}

type placementItem struct {
	Zone      *string `json:"Zone"`
	ProjectId int64   `json:"ProjectId"`
}

type systemDiskItem struct {
	DiskType string `json:"DiskType"`
	DiskId   string `json:"DiskId"`
	DiskSize int64  `json:"DiskSize"`
}

type internetItem struct {
	InternetChargeType      string `json:"InternetChargeType"`
	InternetMaxBandwidthOut int64  `json:"InternetMaxBandwidthOut"`
	PublicIpAssigned        bool   `json:"PublicIpAssigned"`
}

type vpcItem struct {
	VpcId        string `json:"VpcId"`
	SubnetId     string `json:"SubnetId"`
	AsVpcGateway bool   `json:"AsVpcGateway"`
}

// tagItem is an element of Tags; the null-details fault nulls a Value.
type tagItem struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

// instanceItem is an element of DescribeInstances' InstanceSet, with the
// fields a poller or an enricher reads, in the real API's shapes (SDK
// cvm/v20170312.Instance). A pointer or slice field is null where the real
// API gives null: PublicIpAddresses without a public IP, ExpiredTime and
// RenewFlag of a postpaid instance, LatestOperationErrorMsg unless the
// operation failed, LatestOperation* of an instance that never had one; and
// every descriptive field under the null-details fault.
type instanceItem struct {
	Placement                *placementItem `json:"Placement"`
	InstanceId               *string        `json:"InstanceId"`
	InstanceType             *string        `json:"InstanceType"`
	CPU                      int64          `json:"CPU"`
	Memory                   int64          `json:"Memory"`
	RestrictState            *string        `json:"RestrictState"`
	InstanceName             *string        `json:"InstanceName"`
	InstanceChargeType       *string        `json:"InstanceChargeType"`
	SystemDisk               systemDiskItem `json:"SystemDisk"`
	DataDisks                []struct{}     `json:"DataDisks"`
	PrivateIpAddresses       []string       `json:"PrivateIpAddresses"`
	PublicIpAddresses        []string       `json:"PublicIpAddresses"`
	InternetAccessible       internetItem   `json:"InternetAccessible"`
	VirtualPrivateCloud      vpcItem        `json:"VirtualPrivateCloud"`
	ImageId                  string         `json:"ImageId"`
	RenewFlag                *string        `json:"RenewFlag"`
	CreatedTime              *string        `json:"CreatedTime"`
	ExpiredTime              *string        `json:"ExpiredTime"`
	OsName                   string         `json:"OsName"`
	SecurityGroupIds         []string       `json:"SecurityGroupIds"`
	InstanceState            *string        `json:"InstanceState"`
	Tags                     []*tagItem     `json:"Tags"`
	StopChargingMode         string         `json:"StopChargingMode"`
	Uuid                     string         `json:"Uuid"`
	LatestOperation          *string        `json:"LatestOperation"`
	LatestOperationState     *string        `json:"LatestOperationState"`
	LatestOperationRequestId *string        `json:"LatestOperationRequestId"`
	DisasterRecoverGroupId   string         `json:"DisasterRecoverGroupId"`
	IPv6Addresses            []string       `json:"IPv6Addresses"`
	CamRoleName              string         `json:"CamRoleName"`
	HpcClusterId             string         `json:"HpcClusterId"`
	RdmaIpAddresses          []string       `json:"RdmaIpAddresses"`
	IsolatedSource           *string        `json:"IsolatedSource"`
	DisableApiTermination    bool           `json:"DisableApiTermination"`
	DefaultLoginUser         string         `json:"DefaultLoginUser"`
	DefaultLoginPort         int64          `json:"DefaultLoginPort"`
	LatestOperationErrorMsg  *string        `json:"LatestOperationErrorMsg"`
}

type listResponse struct {
	Response struct {
		TotalCount        int64           `json:"TotalCount"`
		InstanceStatusSet json.RawMessage `json:"InstanceStatusSet,omitempty"`
		InstanceSet       json.RawMessage `json:"InstanceSet,omitempty"`
		RequestId         string          `json:"RequestId"`
	} `json:"Response"`
}

func strPtr(s string, null bool) *string {
	if null {
		return nil
	}
	return &s
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toStatusItem(it pageItem) statusItem {
	return statusItem{
		InstanceId:    strPtr(it.inst.id, it.nullID),
		InstanceState: strPtr(it.inst.state, it.nullState),
	}
}

func toInstanceItem(it pageItem) instanceItem {
	in := it.inst
	out := instanceItem{
		Placement:          &placementItem{Zone: &in.zone, ProjectId: in.projectID},
		InstanceId:         strPtr(in.id, it.nullID),
		InstanceType:       &in.itype,
		CPU:                in.cpu,
		Memory:             in.memory,
		RestrictState:      &in.restrict,
		InstanceName:       &in.name,
		InstanceChargeType: &in.chargeType,
		SystemDisk:         systemDiskItem{DiskType: "CLOUD_PREMIUM", DiskId: diskID(in.uuid), DiskSize: 50},
		PrivateIpAddresses: []string{in.privateIP},
		InternetAccessible: internetItem{InternetChargeType: "TRAFFIC_POSTPAID_BY_HOUR"},
		VirtualPrivateCloud: vpcItem{
			VpcId:    in.vpcID,
			SubnetId: in.subnetID,
		},
		ImageId:                  in.imageID,
		CreatedTime:              optStr(in.created.UTC().Format(createdLayout)),
		OsName:                   "TencentOS Server 3.1 (TK4)",
		SecurityGroupIds:         []string{in.sgID},
		InstanceState:            strPtr(in.state, it.nullState),
		Tags:                     make([]*tagItem, 0, len(in.tags)),
		StopChargingMode:         "NOT_APPLICABLE",
		Uuid:                     in.uuid,
		LatestOperation:          optStr(in.latestOp),
		LatestOperationState:     optStr(in.latestOpState),
		LatestOperationRequestId: optStr(in.latestOpReq),
		IsolatedSource:           &in.isolated,
		DefaultLoginUser:         "root",
		DefaultLoginPort:         22,
		LatestOperationErrorMsg:  optStr(in.latestOpErr),
	}
	for _, t := range in.tags {
		out.Tags = append(out.Tags, &tagItem{Key: optStr2(t.Key), Value: optStr2(t.Value)})
	}
	if in.publicIP != "" {
		out.PublicIpAddresses = []string{in.publicIP}
		out.InternetAccessible.InternetMaxBandwidthOut = 5
		out.InternetAccessible.PublicIpAssigned = true
	}
	if in.chargeType == "PREPAID" && !in.expires.IsZero() {
		out.RenewFlag = optStr("NOTIFY_AND_MANUAL_RENEW")
		out.ExpiredTime = optStr(in.expires.UTC().Format(createdLayout))
	}
	if in.state == StateStopped {
		out.StopChargingMode = "KEEP_CHARGING"
	}
	if it.nullDetails {
		nullDetails(&out)
	}
	return out
}

// nullDetails nulls every descriptive field of an item but InstanceId and
// InstanceState, and plants a null tag and a tag with a null Value: the
// null-details fault.
func nullDetails(out *instanceItem) {
	out.Placement, out.InstanceType, out.RestrictState, out.InstanceName = nil, nil, nil, nil
	out.InstanceChargeType, out.PrivateIpAddresses, out.PublicIpAddresses = nil, nil, nil
	out.CreatedTime, out.ExpiredTime, out.RenewFlag, out.IsolatedSource = nil, nil, nil, nil
	out.LatestOperation, out.LatestOperationState, out.LatestOperationRequestId = nil, nil, nil
	out.LatestOperationErrorMsg = nil
	out.Tags = []*tagItem{nil, {Key: optStr2("env"), Value: nil}}
}

// optStr2 is a pointer to s, even when s is empty.
func optStr2(s string) *string { return &s }

// encodePage renders pg as the action's success response.
func encodePage(action string, pg page, requestID string) []byte {
	var r listResponse
	r.Response.TotalCount = pg.total
	r.Response.RequestId = requestID
	var set any
	if action == ActionDescribeInstances {
		items := make([]instanceItem, 0, len(pg.items))
		for _, it := range pg.items {
			items = append(items, toInstanceItem(it))
		}
		set = items
	} else {
		items := make([]statusItem, 0, len(pg.items))
		for _, it := range pg.items {
			items = append(items, toStatusItem(it))
		}
		set = items
	}
	raw := json.RawMessage("null")
	if !pg.nullSet {
		b, err := json.Marshal(set)
		if err != nil { // only strings, numbers and bools: cannot happen
			return encodeError(errorf(CodeInternalError, "encode response"), requestID)
		}
		raw = b
	}
	if action == ActionDescribeInstances {
		r.Response.InstanceSet = raw
	} else {
		r.Response.InstanceStatusSet = raw
	}
	out, err := json.Marshal(r)
	if err != nil {
		return encodeError(errorf(CodeInternalError, "encode response"), requestID)
	}
	return out
}

// encodeEmptyResponse renders {"Response":{"RequestId":".."}}.
func encodeEmptyResponse(requestID string) []byte {
	b, _ := json.Marshal(map[string]map[string]string{"Response": {"RequestId": requestID}})
	return b
}

func diskID(uuid string) string {
	if len(uuid) < 8 {
		return "disk-00000000"
	}
	return "disk-" + uuid[:8]
}
